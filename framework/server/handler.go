package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"sort"

	"github.com/microbot/microbot/framework/codec"
	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/rpcerr"
)

var (
	contextType = reflect.TypeFor[context.Context]()
	errorType   = reflect.TypeFor[error]()
)

// endpoint is one method of a handler, looked up once by reflection.
type endpoint struct {
	name     string        // "Say.Hello"
	fn       reflect.Value // the method bound to its receiver
	req, rsp reflect.Type  // the element types of the *Req and *Rsp arguments
	info     *registry.Endpoint
}

// handlerEndpoints returns the endpoints of h's methods of the handler form.
// It returns the handler's name too.
func handlerEndpoints(h any, o HandlerOptions) (string, map[string]*endpoint, error) {
	v := reflect.ValueOf(h)
	t := v.Type()
	if t.Kind() != reflect.Pointer && t.Kind() != reflect.Struct {
		return "", nil, fmt.Errorf("handler %T: want a struct or a pointer to one", h)
	}
	if o.Name == "" {
		o.Name = reflect.Indirect(v).Type().Name()
		if o.Name == "" {
			return "", nil, fmt.Errorf("handler %T has no type name: give one with WithHandlerName", h)
		}
	}
	eps := map[string]*endpoint{}
	for i := range t.NumMethod() {
		m := t.Method(i)
		mt := m.Type // includes the receiver
		if !m.IsExported() || mt.NumIn() != 4 || mt.NumOut() != 1 ||
			mt.In(1) != contextType || mt.In(2).Kind() != reflect.Pointer ||
			mt.In(3).Kind() != reflect.Pointer || mt.Out(0) != errorType {
			continue
		}
		name := o.Name + "." + m.Name
		md := map[string]string{"stream": "false"}
		for k, v := range o.Metadata {
			md[k] = v
		}
		eps[name] = &endpoint{
			name: name,
			fn:   v.Method(i),
			req:  mt.In(2).Elem(),
			rsp:  mt.In(3).Elem(),
			info: &registry.Endpoint{
				Name:     name,
				Request:  schemaOf(mt.In(2)),
				Response: schemaOf(mt.In(3)),
				Metadata: md,
			},
		}
	}
	if len(eps) == 0 {
		return "", nil, fmt.Errorf("handler %T has no method of the form func(context.Context, *Request, *Response) error", h)
	}
	return o.Name, eps, nil
}

// call decodes body into a new request, runs the method, and encodes the
// response. id names the service in errors.
func (e *endpoint) call(ctx context.Context, id string, c codec.Codec, body []byte) (rspBody []byte, err error) {
	req := reflect.New(e.req)
	if err := c.Unmarshal(body, req.Interface()); err != nil {
		return nil, rpcerr.BadRequest(id, "malformed request for %s: %v", e.name, err)
	}
	rsp := reflect.New(e.rsp)
	if herr := e.invoke(ctx, id, req, rsp); herr != nil {
		return nil, herr
	}
	b, err := c.Marshal(rsp.Interface())
	if err != nil {
		return nil, rpcerr.InternalServerError(id, "encoding the response of %s as %s: %v", e.name, c.ContentType(), err)
	}
	return b, nil
}

// invoke runs the handler method, turning a panic into a 500 and its error
// into an *rpcerr.Error.
func (e *endpoint) invoke(ctx context.Context, id string, req, rsp reflect.Value) (err *rpcerr.Error) {
	defer func() {
		if r := recover(); r != nil {
			slog.Error("handler panicked", "service", id, "endpoint", e.name, "panic", r, "stack", string(debug.Stack()))
			err = rpcerr.InternalServerError(id, "handler %s panicked: %v", e.name, r)
			err.Plain = true
		}
	}()
	out := e.fn.Call([]reflect.Value{reflect.ValueOf(ctx), req, rsp})
	herr, _ := out[0].Interface().(error)
	if herr == nil {
		return nil
	}
	var me *rpcerr.Error
	switch {
	case errors.As(herr, &me):
		if me.ID == "" {
			c := *me
			c.ID = id
			return &c
		}
		return me
	case errors.Is(herr, context.DeadlineExceeded):
		err = rpcerr.Timeout(id, "%s did not finish before the caller's deadline: %v", e.name, herr)
	case errors.Is(herr, context.Canceled):
		err = rpcerr.Timeout(id, "%s was cancelled (the caller went away): %v", e.name, herr)
	default:
		err = rpcerr.InternalServerError(id, "%s", herr.Error())
	}
	err.Plain = true
	return err
}

// endpointInfos returns the published form of eps, sorted by name.
func endpointInfos(eps map[string]*endpoint) []*registry.Endpoint {
	out := make([]*registry.Endpoint, 0, len(eps))
	for _, e := range eps {
		out = append(out, e.info) // never changed once built
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
