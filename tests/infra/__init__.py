"""Offline checks of infra/ (Bicep parse, checkov, settings agreement)."""
