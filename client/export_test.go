package client

// Jitter exposes the backoff delay function to the tests.
var Jitter = jitter

// RetryAfter exposes the Retry-After parser to the tests.
var RetryAfter = retryAfter

// SpreadHint exposes the retry hint's jitter to the tests.
var SpreadHint = spreadHint
