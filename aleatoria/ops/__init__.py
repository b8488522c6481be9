"""
Operations: Sentry, Prometheus, the log, traces -- observers of the
domain's events and the accounting of store calls, within budgets.
"""
