"""Appraisal: ledger, measures, reward rules, incentive runs, statements, disputes and scorecards."""
