"""The nightly benchmark: a fixed suite of runs and performance figures, compared with recent nights.

suite.py    the typed suite config (runs, performance figures, baseline window, tolerances)
figures.py  the performance figures, measured by the benchmarks in geosweep.bench
compare.py  baseline (median of the last K passed nights) and tolerance checks
store.py    the nightly's MLflow runs: parent, children, history
report.py   the regression report (markdown and HTML)
run.py      one night: run the suite, compare, report; the job's command line
"""
