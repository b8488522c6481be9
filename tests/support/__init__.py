"""Helpers of the tests, imported by the test modules that need them."""
