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
// # go-micro's dialect
//
// The same server answers go-micro's clients, and the client calls go-micro's
// servers, as they speak to each other (go-micro v1's http transport, and
// go-micro v0.x's).
//
// A request is go-micro's when it carries go-micro's marks: Micro-Id,
// Micro-Method, any X-Micro-* field (go-micro v1 sends X- copies of
// Micro-Id, Micro-Service, Micro-Method and Micro-Endpoint; v0.2x sends only
// those), or Timeout. go-micro v1.8.0's client writes, for Say.Hello in
// protobuf:
//
//	POST / HTTP/1.1
//	Host: 127.0.0.1:40251
//	User-Agent: Go-http-client/1.1
//	Content-Length: 6
//	Accept: application/protobuf
//	Content-Type: application/protobuf
//	Micro-Endpoint: Say.Hello
//	Micro-From-Service: go.micro.client.gomicro   metadata: a field of its own name
//	Micro-Id: 0
//	Micro-Method: Say.Hello                       the endpoint, go-micro's older name
//	Micro-Service: go.micro.srv.greeter
//	Timeout: 5000000000                           nanoseconds
//	X-Micro-Endpoint: Say.Hello
//	X-Micro-Id: 0
//	X-Micro-Method: Say.Hello
//	X-Micro-Service: go.micro.srv.greeter
//
// The endpoint is Micro-Endpoint, else Micro-Method (else their X- copies);
// Timeout gives the handler's deadline; every field the transport does not
// read itself (not Host, User-Agent, Accept, Accept-Encoding, the framing
// fields, nor go-micro's own) is metadata, under its canonical name.
//
// go-micro's servers answer every call, failed or not, with status 200: its
// client takes any other status for a broken transport, and sends the call
// again (to another node, if there is one) as go-micro retries what fails
// with code 500. So a go-micro caller's failed call is answered
//
//	HTTP/1.1 200 OK
//	Content-Type: application/protobuf
//	Micro-Error: {"id":"go.micro.srv.greeter","code":409,"detail":"no","status":"Conflict"}
//	X-Micro-Error: {"id":"go.micro.srv.greeter","code":409,"detail":"no","status":"Conflict"}
//	Content-Length: 0
//
// and the connection stays open (go-micro v1.0 to v1.8 close theirs). An
// error made from a handler's plain Go error, a panic or the end of its
// context (rpcerr.Error.Plain) goes as its text alone, as go-micro's servers
// send a plain error: go-micro's client reads it as an error without a code
// and does not send the call again, where a coded 500 or 408 it would.
//
// go-micro before v0.22 (2018; its nodes have no protocol metadata) frames
// the body instead of naming the method in the header: application/proto-rpc
// is two pieces, each after its length in 4 bytes big-endian, an envelope
// {1: method, 2: fixed64 sequence number} (an answer's adds 3: the error
// text, empty on success) and the message; application/json-rpc is JSON-RPC
// 1.0, {"method", "params": [message], "id"} answered by {"id", "result",
// "error"}. Its client sends these under application/octet-stream (its
// default), application/protobuf and application/json too, without any
// Micro-Service, Micro-Endpoint or Micro-Method field: a request whose
// header names no service, endpoint or method is read in the framing of its
// Content-Type. Framed requests are answered framed, with status 200 (an
// error in the frame and in Micro-Error), the sequence number or id echoed.
//
// Towards go-micro nodes the client speaks the same: [Request.GoMicro] adds
// go-micro's fields (Micro-Method, Micro-Id, the X- copies, Timeout in
// nanoseconds, metadata as fields of their own names), [Request.Framing]
// frames the body. An error answered with status 200 (only go-micro's
// servers do that: microbot's answer microbot's callers with the error's
// status) never leaves its connection in the pool: go-micro v1.0 to v1.8
// close it after an error without saying so. package framework/client picks
// the dialect of each node from its registry metadata.
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
