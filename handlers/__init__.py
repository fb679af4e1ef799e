"""Thin cloud entry points (AWS Lambda, Google Cloud Functions) over `core`."""
