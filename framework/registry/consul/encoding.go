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
	// Tag marks the Consul service instances microbot registered; the
	// registry reads only those.
	Tag = "microbot"
	// VersionTagPrefix starts the tag holding the service's version
	// ("v=1.0.0"), so listing services needs no decoding.
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

// registration builds the Consul service instance for one node of s.
// With ttl zero the node gets no check and lives until deregistered.
func registration(s *registry.Service, n *registry.Node, ttl time.Duration) (*api.AgentServiceRegistration, error) {
	chunks, err := encodeDefinition(&definition{
		Version:      s.Version,
		Metadata:     s.Metadata,
		Endpoints:    toWireEndpoints(s.Endpoints),
		Address:      n.Address,
		NodeMetadata: n.Metadata,
	})
	if err != nil {
		return nil, err
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
	host, port := splitAddress(n.Address)
	reg := &api.AgentServiceRegistration{
		ID:      n.ID,
		Name:    s.Name,
		Tags:    []string{Tag, VersionTagPrefix + s.Version},
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
	return reg, nil
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
// its one node.
func decodeEntry(svc *api.AgentService) (*registry.Service, error) {
	def, err := decodeDefinition(svc.Meta)
	if err != nil {
		return nil, fmt.Errorf("consul service %q instance %q: %w", svc.Service, svc.ID, err)
	}
	return &registry.Service{
		Name:      svc.Service,
		Version:   def.Version,
		Metadata:  def.Metadata,
		Endpoints: fromWireEndpoints(def.Endpoints),
		Nodes:     []*registry.Node{{ID: svc.ID, Address: def.Address, Metadata: def.NodeMetadata}},
	}, nil
}
