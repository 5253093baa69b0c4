"""`geosweep report`: one self-contained HTML page comparing the runs of an experiment or a sweep, from MLflow."""
