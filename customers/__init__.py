"""The customer base (客户信息库): records, imports, contribution and tiers, alerts, masking, contact suggestion."""
