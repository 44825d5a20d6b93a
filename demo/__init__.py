"""`make demo`: credvend's guided tour on LocalStack, with no AWS account."""
