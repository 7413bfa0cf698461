"""The page ``mledge edge serve`` shows at /: the latest predictions, refreshed every two seconds
from /latest. Everything is inline (no script, style or font fetched), so it works offline on a board."""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mledge serve: {bundle}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0 auto; max-width: 960px; padding: 12px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9em; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }}
.note {{ color: #666; font-size: 0.9em; }} .label {{ background: #e8f0fe; border-radius: 3px; padding: 0 4px; }}
</style>
</head>
<body>
<h1>{bundle}</h1>
<p class="note" id="status">waiting for the first prediction: POST a photo to /predict</p>
<table id="latest"><thead><tr><th>time</th><th>source</th><th>labels</th><th>top</th><th>ms</th></tr></thead>
<tbody></tbody></table>
<script>
function cell(row, text) {{ const td = row.insertCell(); td.textContent = text; return td; }}
async function refresh() {{
  let rows;
  try {{ rows = await (await fetch("latest", {{cache: "no-store"}})).json(); }}
  catch (err) {{ document.getElementById("status").textContent = "the service does not answer"; return; }}
  const body = document.querySelector("#latest tbody");
  body.replaceChildren();
  for (const r of rows) {{
    const row = body.insertRow();
    cell(row, r.time); cell(row, r.source);
    const labels = row.insertCell();
    for (const name of r.labels) {{
      const span = document.createElement("span"); span.className = "label"; span.textContent = name;
      labels.append(span, " ");
    }}
    const top = Object.entries(r.probabilities).sort((a, b) => b[1] - a[1]).slice(0, 3);
    cell(row, top.map(([c, p]) => c + " " + p.toFixed(2)).join(", "));
    cell(row, r.ms.toFixed(1));
  }}
  document.getElementById("status").textContent = rows.length ? rows.length + " latest predictions" :
    "waiting for the first prediction: POST a photo to /predict";
}}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
"""
