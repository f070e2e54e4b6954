"""Adapters that turn other env APIs into the project's ``VecEnv`` contract."""
