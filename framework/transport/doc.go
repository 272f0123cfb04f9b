// Package transport carries calls between client and server as HTTP/1.1
// requests over a pool of keep-alive connections.
//
// # Wire format
//
// A call is one HTTP request:
//
//	POST / HTTP/1.1
//	Host: 127.0.0.1:34567
//	Content-Type: application/json            (or application/protobuf)
//	Content-Length: 16
//	Micro-Service: go.micro.srv.greeter       the service called
//	Micro-Endpoint: Say.Hello                 the endpoint ("Type.Method")
//	Micro-Timeout: 4999ms                     time the caller still waits (optional)
//	Micro-Meta-Micro-User-Id: U123            one header per metadata pair (optional)
//
//	{"name": "John"}
//
// Micro-Timeout is a Go duration (time.ParseDuration); the server gives the
// handler a context with that deadline, so work stops when nobody waits for
// it any more. It is relative, so the clocks of the hosts need not agree.
//
// Metadata (package framework/metadata) travels as headers named
// "Micro-Meta-" + key. Values are percent-encoded where they hold '%', a
// control character or a non-ASCII byte (so plain ASCII values are sent as
// they are), and percent-decoded on arrival.
//
// A successful call answers 200 with the response encoded in the request's
// Content-Type. A failed call answers with the error's code as HTTP status
// (500 if the code is not an HTTP error status) and the error as JSON,
// {"id":..., "code":..., "detail":..., "status":...} (package
// framework/rpcerr), both in the Micro-Error header and as the body, so
// curl shows it too:
//
//	HTTP/1.1 404 Not Found
//	Content-Type: application/json
//	Micro-Error: {"id":"go.micro.srv.greeter","code":404,"detail":"unknown endpoint Say.Bye of service go.micro.srv.greeter","status":"Not Found"}
//
// A request that is not a POST gets 405; a malformed one 400 (431 for a
// header section over 1 MiB); a body over the server's limit 413, sent
// before the body is read when Content-Length or "Expect: 100-continue"
// tells its size.
//
// # Implementation
//
// Both ends speak HTTP/1.1 themselves instead of using net/http, which
// costs a few goroutine hand-offs and allocations per call: the [Client]
// writes a request with one write and reads the answer on the caller's
// goroutine, over a pool of keep-alive connections (one call at a time on
// each); a pooled connection idle for over a second is checked, with a read
// that does not wait, for having been closed by the server before it is
// used again. The [Server] runs one goroutine per connection and answers
// its requests in order; pipelined requests are answered together, in one
// write. It understands Content-Length and chunked bodies, "Expect:
// 100-continue", "Connection: close" and HTTP/1.0; both ends read header
// sections with the same code. The client skips up to five informational
// (1xx) answers before a response and fails the call after more. The
// caller's context (deadline or cancel) interrupts its I/O. On the server,
// the wait for and the reading of a request are bounded by the idle timeout
// (2 min), the writing of answers by the write timeout (30 s), set before
// the first byte of every answer: a caller that does not read its answer
// loses its connection after it, pipelined requests or not. Both deadlines
// are moved only once half of them has passed, to spare a timer change per
// request. A connection keeps nothing of a request once it is answered: a
// long header line's buffer is dropped when the header is read, so an
// idle keep-alive connection holds about 17 KB whatever it was sent. At
// most 1024 connections are open at once ([WithMaxConns]); one more is
// answered at once with a 503 whose Micro-Error says "too many connections
// to this server (limit N)", and closed (the refusals are logged, one line
// every 10 s at most).
//
// A request is safe to send again elsewhere when it was not written whole
// ([SendError.NotSent]): a server never handles a request it did not read
// to its end.
//
// So any HTTP client can call a service:
//
//	curl -H 'Content-Type: application/json' -H 'Micro-Service: go.micro.srv.greeter' \
//	     -H 'Micro-Endpoint: Say.Hello' -d '{"name":"John"}' http://127.0.0.1:34567/
package transport
