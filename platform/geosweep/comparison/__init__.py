"""Comparing runs: the rows, groups over seeds and figures that the sweep's leaderboard and the report share.

rows.py     runs to rows (one meaning of a row, for both)
groups.py   configurations grouped over seeds (mean +- std, never best-of), result columns, table cells
figures.py  the figures both draw (parallel coordinates) and the standalone page around one
"""
