// Package consul is the Consul registry of microbot: services register with
// a Consul agent's HTTP API, so processes on many hosts find each other. It
// is "consul" in the framework's table of registries (select it with
// --registry=consul --registry_address=host:port[,host:port...]).
//
// # How a service is written into Consul
//
// Each node of a service is one Consul service instance, registered with the
// agent the registry talks to:
//
//   - ID is the node's id, Name the service's name; Address and Port are the
//     node's host:port split (an address without a port goes whole into
//     Address, Port 0).
//   - Tags are "microbot", then go-micro's tags, so that go-micro (v0.x,
//     v1.x, go-plugins) reads the node fully: "v-" + hex of the
//     zlib-compressed version, one "t-" tag per node metadata pair (the
//     JSON {"key":"value"} compressed the same way: protocol=mucp among
//     them, which tells go-micro's client to speak the current protocol)
//     and one "e-" tag per endpoint (its JSON, with the schemas); then
//     "v=" + the version in plain text, as older microbot releases read it.
//     Consul does not limit tags, but they travel in every catalog listing,
//     so microbot keeps a node's go-micro tags within 64 tags and 16 KiB:
//     the version and the protocol always, then as many other metadata
//     pairs as fit, then the endpoints if they all fit (the Meta always
//     holds everything; what was left out is logged when the node is
//     registered).
//   - Meta holds the node's full definition: the JSON object
//     {"version", "metadata", "endpoints", "address", "node_metadata"} (the
//     endpoints with their request and response schemas), compressed with
//     DEFLATE, encoded in base64 (standard alphabet, no padding) and cut into
//     512-character pieces, Consul's limit on a meta value, under the keys
//     microbot_0, microbot_1, ...; microbot_chunks holds their number and
//     microbot the format ("1"). The key version repeats the version in
//     plain text for people reading Consul. What Register is given comes back
//     from GetService and Watch exactly, nil and empty maps and lists
//     included.
//   - Consul allows 64 meta keys, so a definition may take 61 pieces: 31232
//     base64 characters, about 23 KiB compressed. JSON endpoint schemas
//     compress well (a thousand endpoints with a few fields each fit);
//     a definition that does not fit is refused by Register with an error
//     wrapping ErrTooLarge, and nothing is registered for that node.
//   - A TTL check with CheckID "service:" + node id, registered passing, when
//     Register is given a TTL (registry.WithTTL; the framework always
//     gives one). It turns critical when the node has not been registered
//     again within its TTL, and Consul removes the instance after it has been
//     critical for the TTL (at least a minute, Consul's minimum). Register of
//     an unchanged node only passes the check (one small PUT); if the agent
//     does not know the check any more (it restarted, or the node was
//     removed) the node is registered again in full. Without a TTL the node
//     has no check and stays until deregistered, as in the other registries.
//
// # Reading
//
// Every service in the catalog is read, microbot's and every other's
// (go-micro's, other tools', Consul's own): an instance carrying
// microbot's Meta is decoded from it; any other, or one whose Meta does not
// decode, from go-micro's tags (the "v-", "e-", "t-" forms above and the
// plain "v=", "e={...}", "t={...}" go-micro wrote before May 2016), with the
// address from the instance's address (its Consul node's when empty) and
// port, an IPv6 host in brackets. A tag that does not decode costs only
// itself: the instance is shown with what could be read, and a warning is
// logged once per instance and change.
//
// GetService asks Consul's health endpoint for the service's instances whose
// checks all pass (their own TTL check, if any, and their Consul node's
// checks), so a node whose TTL ran out is gone at once. ListServices asks the
// catalog for every name, then each service for the version tags of its
// passing instances. Watch uses blocking queries (X-Consul-Index): one on the
// catalog's service names and one per service on its passing instances, so
// changes arrive within milliseconds without polling; the events are
// registry.Diff of what the watch saw before and after.
//
// # Consistency: stale reads, bounded
//
// Every discovery read (GetService, ListServices and the blocking queries of
// Watch) is a stale read: any Consul server answers from its own copy of the
// catalog, without asking the leader. So reads go on while the servers elect
// a new leader (Consul's default mode answers 500 "No cluster leader" for
// 10-25 s then), and they spread over the servers. This is what Consul
// recommends for service discovery, and what its DNS interface does.
//
// A stale answer is bounded: Consul says how long ago the answering server
// last heard from its leader (X-Consul-LastContact). Past WithMaxStale
// (DefaultMaxStale, 5 s: Consul's raft heartbeat timeout, after which a
// follower itself gives its leader up) the read is asked again as a
// consistent read, which only a server in touch with a leader can answer
// (one second per agent, one such read at a time), so a server cut off from
// a cluster that still has a leader is not believed for long. When no
// consistent read can be made either, as during an election, when nothing
// can change anyway, the stale answer is used and a warning logged, once
// until answers are fresh again; after a failed consistent read the next
// two seconds use stale answers without trying. WithConsistentReads turns
// stale reads off (every read through the leader).
//
// # Failure
//
// Every HTTP call has a timeout (WithTimeout, default 5 s; a blocking
// query gets its wait time on top). With several addresses, a call that gets
// no answer, or a server error, from one agent is tried on the next; the
// error of a call no agent answered names every address tried. A watch whose
// agents do not answer retries with backoff (0.1 s to 2 s) and, when one
// answers again, reports what changed meanwhile.
//
// # Registrations the agent could not sync
//
// A Consul agent answers a registration at once and copies it into the
// catalog afterwards; when that copy fails (the cluster has no leader: the
// agent the service used died while it led the cluster, and the service
// registered through the next agent during the election), the agent tries
// again only at its next full sync, 15 s to 2 minutes later, while the new
// leader has already marked the instance on the dead agent's node critical.
// So after every registration made in full (the first, a changed
// definition, one the agent had lost, one that failed over to another
// agent; never a mere pass of the TTL check) the registry confirms that the
// instance is in the catalog on the node of the agent it registered
// through: a stale read of the service's passing instances filtered to that
// one (a blocking query, so it wakes up when the catalog changes), and,
// while it is not there, it registers it again through the same agent
// (which makes the agent try to sync it at once), with backoff from 0.5 s
// to 2 s, for at most two minutes. Deregister and Close stop it. The read
// needs node:read as well as service:read; a token with only the
// service:write a service needs sees the instance hidden, and Consul says
// it hid something, which counts as the instance being there. Without a
// token against a cluster whose default policy is deny the registry cannot
// tell, and does not confirm.
//
// # ACLs and TLS
//
// Token and TLS settings come from Consul's usual environment variables
// (CONSUL_HTTP_TOKEN, CONSUL_HTTP_TOKEN_FILE, CONSUL_HTTP_SSL, CONSUL_CACERT,
// CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME, ...);
// CONSUL_HTTP_ADDR is used only when no address is given. The token is never
// logged nor put in an error.
//
// What Consul's ACLs refuse is an error wrapping ErrPermissionDenied that
// names the permission missing: Consul's own 403 message for writes ("token
// ... lacks permission 'service:write' on ..."), words pointing at the
// setting for a token Consul does not know ("ACL not found"). Consul does
// not refuse reads: it leaves out what the token may not see, and says so
// (X-Consul-Results-Filtered-By-ACLs) only to requests carrying a token.
// An answer the ACLs emptied is therefore an error too, never an empty
// listing or a "not found": when Consul says it filtered, or, without a
// token against a cluster whose default policy is deny, when even the
// catalog's names are hidden (a catalog always holds Consul's own service).
// An answer the ACLs only thinned is used, with a warning logged once. A
// watch refused at its start fails Watch; refused later, it retries with
// backoff and logs why.
//
// The HTTP client speaks HTTP/1.1, as Consul's API package means to: over
// HTTP/2 a TLS handshake the agent refuses fails later calls with an error
// that no longer says why.
//
// # Coordination
//
// Beside the registry, a Coordinator (NewCoordinator) lets the processes of
// one program share work through the same agents: exclusive locks held by
// a session tied to a TTL check the process passes (Lock), claims made once
// among all of them, which expire by themselves (Claim), and a small
// key-value store with compare-and-delete (Store). The bot's --ha uses it;
// knowing nothing of chat, it is generic. Its keys are under a prefix of
// the KV store (WithKeyPrefix); its presence is a service instance of its
// own (WithPresenceName). See Coordinator for the guarantees and timing.
package consul
