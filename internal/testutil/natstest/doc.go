// Package natstest runs an in-process nats-server with JetStream enabled for tests.
//
// Each server listens on a random port on 127.0.0.1 and stores JetStream data in a
// temporary directory owned by the test. Restart brings the server back on the same port
// with the same store directory, so clients that reconnect find their streams again.
// Cleanup is registered with t.Cleanup.
package natstest
