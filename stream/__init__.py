"""The stream layer: events -> validation/de-duplication -> feature state -> online learners.

Imports neither ``offline`` nor ``serving``, and never torch.
"""
