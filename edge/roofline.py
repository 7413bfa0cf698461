"""A Raspberry Pi 4 / Pi 5 estimate of one photo's time, from a bundle's multiply-accumulates and bytes:
a roofline, the slower of the arithmetic and the weights' trip from DRAM. An ESTIMATE, not a
measurement: ``make bench-arm`` prints it beside the emulated bench, ``mledge recipes`` beside each
recipe's measured figures.

Per core: fp32 FMA lanes (two 128-bit NEON pipes x 4) and int8 MACs per cycle (A72: SMLAL, 2 x 8;
A76: SDOT, 2 x 16). EFFICIENCY: the share of that peak a conv net reaches with XNNPACK (assumed).
GB_s: the DRAM bandwidth one photo's weights stream through (they are far larger than any cache).
Pi 4: STREAM's best kernel measured 5.56 GB/s on a Pi 4 with no display (sci-pi.org.uk/bench/stream.html;
LPDDR4-3200 on a 32-bit bus is 12.8 GB/s on the wire, so 43 % of it). Pi 5: LPDDR4X-4267 on a 32-bit
bus is 17.1 GB/s on the wire; at the Pi 4's measured 43 % that is 7.4 GB/s (assumed, not measured).
"""

from __future__ import annotations

BOARDS = {
    "Pi 4 (Cortex-A72 1.8 GHz)": {"ghz": 1.8, "float32": 8, "int8": 16, "GB_s": 5.56},
    "Pi 5 (Cortex-A76 2.4 GHz)": {"ghz": 2.4, "float32": 8, "int8": 32, "GB_s": 7.4},
}
EFFICIENCY = 0.5


def compute_ms(macs: int, quant: str, board: dict) -> float:
    # int8-float-last: only the logits layer (under 0.01% of the MACs) is float. float16 computes in float;
    # dynamic is counted as float too, though XNNPACK runs it about as fast as int8 on x86.
    per_cycle = board["int8"] if quant.startswith("int8") else board["float32"]
    return macs / (board["ghz"] * 1e9 * per_cycle * EFFICIENCY) * 1000


def memory_ms(weight_bytes: int, board: dict) -> float:
    """Every weight is read once per photo."""
    return weight_bytes / (board["GB_s"] * 1e9) * 1000


def estimate_ms(macs: int, weight_bytes: int, quant: str, board: dict) -> float:
    return max(compute_ms(macs, quant, board), memory_ms(weight_bytes, board))
