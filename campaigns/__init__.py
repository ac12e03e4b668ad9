"""Campaigns: kinds, populations, targets, assignment, bounties and the launch check."""
