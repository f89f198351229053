"""checkov custom checks for infra/ (loaded with --external-checks-dir; checkov needs this file)."""
