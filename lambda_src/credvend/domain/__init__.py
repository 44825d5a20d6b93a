"""Pure domain: imports neither boto3 nor Powertools, so it is tested with fakes."""
