"""How a lab is declared: tasks, checks, oracles, Hypothesis strategies, comparison, and the check API."""
