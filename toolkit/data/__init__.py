"""Datasets in PASCAL VOC layout: the real VOC 2007 and a synthetic one with the same layout."""
