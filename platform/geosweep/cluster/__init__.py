"""The cluster a run lands on: what it can scale to, and what must hold before anything starts there."""
