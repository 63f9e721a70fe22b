package client

// Jitter exposes the backoff delay function to the tests.
var Jitter = jitter
