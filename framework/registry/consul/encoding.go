package consul

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/registry"
)

// How a node is written into Consul (see the package documentation).
const (
	// Tag marks the Consul service instances microbot registered.
	Tag = "microbot"
	// VersionTagPrefix starts the tag holding the service's version in
	// plain text ("v=1.0.0"), as older microbot releases read it (and
	// go-micro's first encoding).
	VersionTagPrefix = "v="

	metaFormat      = "microbot"        // encoding format of the definition
	formatV1        = "1"               // flate + base64 of JSON, chunked
	metaVersion     = "version"         // plain version, for people reading Consul
	metaChunks      = "microbot_chunks" // number of chunk keys
	metaChunkPrefix = "microbot_"       // microbot_0, microbot_1, ...
	maxMetaValue    = 512               // Consul's limit on a meta value
	maxMetaKeys     = 64                // Consul's limit on meta pairs
	maxChunks       = maxMetaKeys - 3   // the other keys: format, version, chunks
	maxEncoded      = maxChunks * maxMetaValue
	checkIDPrefix   = "service:" // the TTL check of a node is service:<node id>
)

// ErrTooLarge is returned (wrapped) by Register when a node's definition,
// compressed, does not fit in the service meta Consul allows.
var ErrTooLarge = errors.New("definition too large for Consul service meta")

// definition is what a Consul service instance carries about its node, as
// JSON. Its fields have no omitempty, and wireEndpoint/wireValue mirror
// registry.Endpoint/Value the same way, so nil and empty maps and slices come
// back exactly as they were registered.
type definition struct {
	Version      string            `json:"version"`
	Metadata     map[string]string `json:"metadata"`
	Endpoints    []*wireEndpoint   `json:"endpoints"`
	Address      string            `json:"address"`
	NodeMetadata map[string]string `json:"node_metadata"`
}

type wireEndpoint struct {
	Name     string            `json:"name"`
	Request  *wireValue        `json:"request"`
	Response *wireValue        `json:"response"`
	Metadata map[string]string `json:"metadata"`
}

type wireValue struct {
	Name   string       `json:"name"`
	Type   string       `json:"type"`
	Values []*wireValue `json:"values"`
}

func toWireEndpoints(eps []*registry.Endpoint) []*wireEndpoint {
	if eps == nil {
		return nil
	}
	out := make([]*wireEndpoint, len(eps))
	for i, e := range eps {
		if e == nil {
			continue
		}
		out[i] = &wireEndpoint{Name: e.Name, Request: toWireValue(e.Request), Response: toWireValue(e.Response), Metadata: e.Metadata}
	}
	return out
}

func toWireValue(v *registry.Value) *wireValue {
	if v == nil {
		return nil
	}
	w := &wireValue{Name: v.Name, Type: v.Type}
	if v.Values != nil {
		w.Values = make([]*wireValue, len(v.Values))
		for i, c := range v.Values {
			w.Values[i] = toWireValue(c)
		}
	}
	return w
}

func fromWireEndpoints(ws []*wireEndpoint) []*registry.Endpoint {
	if ws == nil {
		return nil
	}
	out := make([]*registry.Endpoint, len(ws))
	for i, w := range ws {
		if w == nil {
			continue
		}
		out[i] = &registry.Endpoint{Name: w.Name, Request: fromWireValue(w.Request), Response: fromWireValue(w.Response), Metadata: w.Metadata}
	}
	return out
}

func fromWireValue(w *wireValue) *registry.Value {
	if w == nil {
		return nil
	}
	v := &registry.Value{Name: w.Name, Type: w.Type}
	if w.Values != nil {
		v.Values = make([]*registry.Value, len(w.Values))
		for i, c := range w.Values {
			v.Values[i] = fromWireValue(c)
		}
	}
	return v
}

// encodeDefinition returns the meta chunks holding def: JSON, deflated,
// base64 (standard alphabet, no padding), cut into maxMetaValue pieces.
func encodeDefinition(def *definition) ([]string, error) {
	js, err := json.Marshal(def)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := flate.NewWriter(&buf, flate.BestCompression)
	if err != nil {
		return nil, err
	}
	zw.Write(js)
	if err := zw.Close(); err != nil {
		return nil, err
	}
	enc := base64.RawStdEncoding.EncodeToString(buf.Bytes())
	if len(enc) > maxEncoded {
		return nil, fmt.Errorf("%w: %d bytes of JSON compress to %d base64 characters, the limit is %d (%d meta keys of %d)",
			ErrTooLarge, len(js), len(enc), maxEncoded, maxChunks, maxMetaValue)
	}
	chunks := make([]string, 0, len(enc)/maxMetaValue+1)
	for len(enc) > maxMetaValue {
		chunks = append(chunks, enc[:maxMetaValue])
		enc = enc[maxMetaValue:]
	}
	return append(chunks, enc), nil
}

// maxDecoded bounds the JSON a definition may inflate to, so a corrupt or
// hostile entry cannot exhaust memory.
const maxDecoded = 16 << 20

func decodeDefinition(meta map[string]string) (*definition, error) {
	if f := meta[metaFormat]; f != formatV1 {
		return nil, fmt.Errorf("unknown encoding format %q", f)
	}
	n, err := strconv.Atoi(meta[metaChunks])
	if err != nil || n < 1 || n > maxChunks {
		return nil, fmt.Errorf("bad %s %q", metaChunks, meta[metaChunks])
	}
	var sb strings.Builder
	for i := range n {
		c, ok := meta[metaChunkPrefix+strconv.Itoa(i)]
		if !ok {
			return nil, fmt.Errorf("chunk %d of %d missing", i, n)
		}
		sb.WriteString(c)
	}
	raw, err := base64.RawStdEncoding.DecodeString(sb.String())
	if err != nil {
		return nil, fmt.Errorf("base64: %w", err)
	}
	js, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(raw)), maxDecoded+1))
	if err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	if len(js) > maxDecoded {
		return nil, fmt.Errorf("definition inflates to more than %d bytes", maxDecoded)
	}
	def := new(definition)
	if err := json.Unmarshal(js, def); err != nil {
		return nil, fmt.Errorf("json: %w", err)
	}
	return def, nil
}

// registration builds the Consul service instance for one node of s:
// microbot's full definition in the Meta, and go-micro's tags next to it.
// With ttl zero the node gets no check and lives until deregistered.
// omitted says what the go-micro tags left out to stay within their
// budget (empty if nothing).
func registration(s *registry.Service, n *registry.Node, ttl time.Duration) (reg *api.AgentServiceRegistration, omitted string, err error) {
	chunks, err := encodeDefinition(&definition{
		Version:      s.Version,
		Metadata:     s.Metadata,
		Endpoints:    toWireEndpoints(s.Endpoints),
		Address:      n.Address,
		NodeMetadata: n.Metadata,
	})
	if err != nil {
		return nil, "", err
	}
	meta := map[string]string{
		metaFormat: formatV1,
		metaChunks: strconv.Itoa(len(chunks)),
	}
	if len(s.Version) <= maxMetaValue {
		meta[metaVersion] = s.Version
	}
	for i, c := range chunks {
		meta[metaChunkPrefix+strconv.Itoa(i)] = c
	}
	// "microbot" first, then go-micro's tags (its version first, so go-micro,
	// which reads the first version tag, and microbot agree), then the
	// plain version tag older microbot releases read.
	plain := VersionTagPrefix + s.Version
	gm, omitted := goMicroTags(s, n, 2, len(Tag)+len(plain))
	tags := make([]string, 0, len(gm)+2)
	tags = append(tags, Tag)
	tags = append(tags, gm...)
	tags = append(tags, plain)
	host, port := splitAddress(n.Address)
	reg = &api.AgentServiceRegistration{
		ID:      n.ID,
		Name:    s.Name,
		Tags:    tags,
		Address: host,
		Port:    port,
		Meta:    meta,
	}
	if ttl > 0 {
		reg.Check = &api.AgentServiceCheck{
			CheckID:                        checkIDPrefix + n.ID,
			Name:                           "microbot TTL",
			TTL:                            ttl.String(),
			Status:                         api.HealthPassing,
			DeregisterCriticalServiceAfter: deregisterAfter(ttl).String(),
		}
	}
	return reg, omitted, nil
}

// deregisterAfter is how long a node's check may stay critical before Consul
// removes the node: one TTL, but at least the minute Consul requires.
func deregisterAfter(ttl time.Duration) time.Duration {
	return max(ttl, time.Minute)
}

// splitAddress splits host:port for Consul's Address and Port fields; an
// address without a port goes whole into Address. The exact address string
// travels in the definition too, so nothing is lost either way.
func splitAddress(addr string) (string, int) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 0
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return addr, 0
	}
	return host, port
}

// decodeEntry decodes one Consul service instance into a Service holding
// its one node: from microbot's definition in its Meta when it has one, else
// (an instance go-micro or another tool registered, or a definition that
// does not decode) from go-micro's tags, with the address from the
// instance's address, or nodeAddr (its Consul node's) when that is empty,
// and its port. It always returns what it could read; the error says what
// it could not.
func decodeEntry(svc *api.AgentService, nodeAddr string) (*registry.Service, error) {
	var merr error
	if _, ours := svc.Meta[metaFormat]; ours {
		def, err := decodeDefinition(svc.Meta)
		if err == nil {
			return &registry.Service{
				Name:      svc.Service,
				Version:   def.Version,
				Metadata:  def.Metadata,
				Endpoints: fromWireEndpoints(def.Endpoints),
				Nodes:     []*registry.Node{{ID: svc.ID, Address: def.Address, Metadata: def.NodeMetadata}},
			}, nil
		}
		merr = fmt.Errorf("meta: %w; read from its tags instead", err)
	}
	out, err := fromTags(svc, nodeAddr)
	if err = errors.Join(merr, err); err != nil {
		return out, fmt.Errorf("consul service %q instance %q: %w", svc.Service, svc.ID, err)
	}
	return out, nil
}
