package consul

import (
	"bytes"
	"compress/zlib"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/microbot/microbot/framework/registry"
)

// go-micro's encoding of a node in Consul tags (go-micro v1's
// registry/consul/encoding.go, the same in go-micro v0.x and go-plugins):
// a tag is a kind letter, a form character and the text,
//
//	v-<hex of zlib(version)>                   the service version
//	e-<hex of zlib(JSON of one endpoint)>      one tag per endpoint
//	t-<hex of zlib(JSON {"key":"value"})>      one tag per node metadata pair
//
// and before May 2016 the plain forms "v=1.0.0", "e={...}" and
// "t={"key":"value"}".
const (
	kindVersion  = 'v'
	kindEndpoint = 'e'
	kindMetadata = 't'
	formHex      = '-'
	formPlain    = '='
)

// Limits of the go-micro tags microbot writes. Consul itself limits neither
// the length nor the number of tags, but every tag travels in each answer
// to a catalog listing (/v1/catalog/services, which every watch of the whole
// registry asks again on each change) and in each health answer about the
// service: the budget keeps a node's tags to a few KiB of hex. A node whose
// tags would go beyond it keeps its full definition in the Meta, and its
// tags keep the version and the protocol metadata (all go-micro needs to
// call it), then as many other metadata pairs as fit, then the endpoints if
// they all fit (a partial list would mislead whoever reads it).
const (
	maxTags     = 64
	maxTagBytes = 16 << 10
	// maxTagText bounds what one tag may inflate to when read.
	maxTagText = 1 << 20
)

// encodeTag returns the tag of kind holding text in go-micro's hex form.
func encodeTag(kind byte, text []byte) string {
	var b bytes.Buffer
	w := zlib.NewWriter(&b)
	w.Write(text) //nolint:errcheck // writes to a bytes.Buffer cannot fail
	w.Close()     //nolint:errcheck
	out := make([]byte, 2+hex.EncodedLen(b.Len()))
	out[0], out[1] = kind, formHex
	hex.Encode(out[2:], b.Bytes())
	return string(out)
}

// tagText returns the text of a go-micro tag in either form. ok is false
// for a tag that is not go-micro's (another tool's, microbot's own).
func tagText(tag string) (kind byte, text []byte, ok bool, err error) {
	if len(tag) < 2 {
		return 0, nil, false, nil
	}
	switch tag[0] {
	case kindVersion, kindEndpoint, kindMetadata:
	default:
		return 0, nil, false, nil
	}
	switch tag[1] {
	case formPlain:
		return tag[0], []byte(tag[2:]), true, nil
	case formHex:
	default:
		return 0, nil, false, nil
	}
	raw, err := hex.DecodeString(tag[2:])
	if err != nil {
		return tag[0], nil, true, fmt.Errorf("hex: %w", err)
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return tag[0], nil, true, fmt.Errorf("zlib: %w", err)
	}
	text, err = io.ReadAll(io.LimitReader(zr, maxTagText+1))
	if err != nil {
		return tag[0], nil, true, fmt.Errorf("zlib: %w", err)
	}
	if len(text) > maxTagText {
		return tag[0], nil, true, fmt.Errorf("inflates to more than %d bytes", maxTagText)
	}
	return tag[0], text, true, nil
}

// goMicroTags returns the go-micro tags of node n of s within the budget
// left after the used tags of used bytes, and what it left out (empty if
// nothing).
func goMicroTags(s *registry.Service, n *registry.Node, used, usedBytes int) (tags []string, omitted string) {
	size := usedBytes
	add := func(t ...string) bool {
		total := 0
		for _, x := range t {
			total += len(x)
		}
		if len(tags)+used+len(t) > maxTags || size+total > maxTagBytes {
			return false
		}
		tags = append(tags, t...)
		size += total
		return true
	}
	metaTag := func(k string) string {
		js, _ := json.Marshal(map[string]string{k: n.Metadata[k]}) // strings always marshal
		return encodeTag(kindMetadata, js)
	}
	// The essentials, whatever the budget says.
	v := encodeTag(kindVersion, []byte(s.Version))
	tags = append(tags, v)
	size += len(v)
	if _, ok := n.Metadata["protocol"]; ok {
		t := metaTag("protocol")
		tags = append(tags, t)
		size += len(t)
	}
	var left []string
	for _, k := range slices.Sorted(maps.Keys(n.Metadata)) {
		if k != "protocol" && !add(metaTag(k)) {
			left = append(left, k)
		}
	}
	var eps []string
	for _, e := range toWireEndpoints(s.Endpoints) {
		if e == nil {
			continue
		}
		js, err := json.Marshal(e)
		if err != nil {
			continue
		}
		eps = append(eps, encodeTag(kindEndpoint, js))
	}
	var notes []string
	if len(left) > 0 {
		notes = append(notes, fmt.Sprintf("node metadata %q", left))
	}
	if len(eps) > 0 && !add(eps...) {
		notes = append(notes, fmt.Sprintf("%d endpoints", len(eps)))
	}
	return tags, strings.Join(notes, " and ")
}

// fromTags decodes an instance registered in go-micro's format: version,
// endpoints and node metadata from its tags, address from its address (or,
// when empty, its Consul node's) and port. It returns what it could read
// even when some tags do not decode; the error says which.
func fromTags(svc *api.AgentService, nodeAddr string) (*registry.Service, error) {
	out := &registry.Service{Name: svc.Service}
	node := &registry.Node{ID: svc.ID, Address: joinAddress(svc.Address, nodeAddr, svc.Port)}
	out.Nodes = []*registry.Node{node}
	var errs []error
	seenVersion := false
	for i, tag := range svc.Tags {
		kind, text, ok, err := tagText(tag)
		if !ok {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("tag %d (%.12s...): %w", i, tag, err))
			continue
		}
		switch kind {
		case kindVersion:
			if !seenVersion { // go-micro reads the first
				out.Version, seenVersion = string(text), true
			}
		case kindEndpoint:
			var e *wireEndpoint
			if err := json.Unmarshal(text, &e); err != nil || e == nil {
				errs = append(errs, fmt.Errorf("tag %d: endpoint: not a JSON object (%v)", i, err))
				continue
			}
			out.Endpoints = append(out.Endpoints, fromWireEndpoints([]*wireEndpoint{e})...)
		case kindMetadata:
			var kv map[string]string
			if err := json.Unmarshal(text, &kv); err != nil {
				errs = append(errs, fmt.Errorf("tag %d: metadata: not a JSON object of strings (%v)", i, err))
				continue
			}
			if node.Metadata == nil {
				node.Metadata = map[string]string{}
			}
			maps.Copy(node.Metadata, kv)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return out, err
	}
	return out, nil
}

// joinAddress makes a node address from Consul's fields as go-micro does:
// the service address, or the Consul node's when it is empty, and the
// port; an IPv6 host is put in brackets. Without a port the host stands
// alone.
func joinAddress(host, nodeAddr string, port int) string {
	if host == "" {
		host = nodeAddr
	}
	if port <= 0 {
		return host
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// tagVersion returns the version an instance's tags give, and whether they
// give one: microbot's "v=" tag and go-micro's both count; the first wins,
// as in go-micro.
func tagVersion(tags []string) (string, bool) {
	for _, tag := range tags {
		if len(tag) < 2 || tag[0] != kindVersion {
			continue
		}
		kind, text, ok, err := tagText(tag)
		if ok && err == nil && kind == kindVersion {
			return string(text), true
		}
	}
	return "", false
}
