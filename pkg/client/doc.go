// Package client is the Go client of the Slipstream agent's local read API: Get one key,
// Range over a prefix (an iterator, with the snapshot's cursor), Watch applied updates with
// automatic resume across disconnects and agent restarts, and Status.
//
//	c, _ := client.New("http://127.0.0.1:7070")
//	e, err := c.Get(ctx, "route.api")
//	l, _ := c.List(ctx, "route.")           // consistent snapshot + its cursor
//	for e, err := range l.All() { ... }
//	for ev, err := range c.Watch(ctx, "route.", l.Cursor) { ... } // every update after it
//
// Watch resumes by itself after the connection drops or the agent restarts; when the agent
// can no longer resume from the client's cursor (the client fell behind, the fold was
// resynced, the agent restarted and does not hold the cursor) it yields ErrResyncRequired:
// List again and Watch from the new cursor.
package client
