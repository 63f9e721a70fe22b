// Package optset seals the option interfaces of the client and server
// packages: an option type outside this module cannot name [Seal], so it
// cannot implement them, while the options of package rpc, which both
// constructors accept, can.
package optset

// Seal is the parameter type of the marker methods ClientOption and
// ServerOption.
type Seal struct{}
