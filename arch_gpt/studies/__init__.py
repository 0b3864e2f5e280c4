"""Studies built on the search: the with/without-GPT bench, the paper's ablations, statistics, reports, plots."""
