"""Sharing policies: the file a department owns, and the pure decision on a request."""

from federation.policy.evaluate import Decision, Request, decide
from federation.policy.model import RELEASE_LEVELS, Policy, PsiClause, Release, load_policy

__all__ = ["RELEASE_LEVELS", "Decision", "Policy", "PsiClause", "Release", "Request", "decide", "load_policy"]
