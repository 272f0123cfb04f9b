package command

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/microbot/microbot/framework/registry"
	"github.com/microbot/microbot/framework/rpcerr"
	"github.com/microbot/microbot/input"
)

// decodeStrict decodes one JSON value from raw into v (numbers kept as
// written, unknown fields refused for structs) and explains an error by its
// position in raw.
func decodeStrict(raw string, v any) error {
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(raw, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("invalid JSON at %s: unexpected text after the end of the value", where(raw, afterValue(raw)))
	}
	return nil
}

// afterValue returns where the text after the first JSON value of raw
// starts.
func afterValue(raw string) int {
	dec := json.NewDecoder(strings.NewReader(raw))
	var skip json.RawMessage
	if err := dec.Decode(&skip); err != nil {
		return 0
	}
	off := int(dec.InputOffset())
	for off < len(raw) {
		r, size := utf8.DecodeRuneInString(raw[off:])
		if !unicode.IsSpace(r) {
			break
		}
		off += size
	}
	return off
}

// jsonError turns a decoding error into a message naming the position.
func jsonError(raw string, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New(`invalid JSON: it ends too early (a closing }, ] or " is missing)`)
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON at %s: %s", where(raw, int(syn.Offset)-1), strings.TrimPrefix(syn.Error(), "json: "))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the value"
		}
		return fmt.Errorf("invalid JSON at %s: %s must be %s, not %s", where(raw, int(typ.Offset)-1), quoteField(field), typ.Type, typ.Value)
	default:
		return fmt.Errorf("invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
}

func quoteField(f string) string { return fmt.Sprintf("%q", f) }

// where describes byte offset off of raw for a person: the character
// number (from 1) and the text there.
func where(raw string, off int) string {
	off = max(0, min(off, len(raw)))
	for off > 0 && !utf8.RuneStart(raw[off]) {
		off--
	}
	near := raw[off:]
	if len(near) > 12 {
		i := 12
		for i > 0 && !utf8.RuneStart(near[i]) {
			i--
		}
		near = near[:i] + "…"
	}
	return fmt.Sprintf("character %d (%q)", utf8.RuneCountInString(raw[:off])+1, near)
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	default:
		return "an object"
	}
}

// indentJSON pretty-prints JSON with two spaces.
func indentJSON(raw []byte) (string, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return "{}", nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, raw, "", "  "); err != nil {
		return "", err
	}
	return buf.String(), nil
}

// Columns aligns rows in columns separated by three spaces, each line
// ending in a new line (a Code reply shows them aligned).
func Columns(rows [][]string) string {
	var buf bytes.Buffer
	w := tabwriter.NewWriter(&buf, 0, 4, 3, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	w.Flush()
	// tabwriter pads the last column too when a row is shorter; trim.
	lines := strings.Split(strings.TrimRight(buf.String(), "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n") + "\n"
}

// line is input.PrintableLine: every value the registry or a service gave
// goes through it (or through input.Printable for a whole text) before it
// is shown, so it can neither add lines or columns nor drive a terminal.
func line(s string) string { return input.PrintableLine(s) }

// formatService renders every version of a service: version, nodes, and
// endpoints with their request and response fields.
func formatService(svcs []*registry.Service) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "service %s\n", line(svcs[0].Name))
	for _, s := range svcs {
		fmt.Fprintf(&sb, "\nversion %s\n", orDash(line(s.Version)))
		if len(s.Metadata) > 0 {
			fmt.Fprintf(&sb, "metadata %s\n", formatMetadata(s.Metadata))
		}
		sb.WriteString("\n")
		rows := [][]string{{"ID", "ADDRESS", "METADATA"}}
		for _, n := range s.Nodes {
			rows = append(rows, []string{line(n.ID), line(n.Address), formatMetadata(n.Metadata)})
		}
		sb.WriteString(Columns(rows))
		eps := slices.Clone(s.Endpoints)
		slices.SortFunc(eps, func(a, b *registry.Endpoint) int { return strings.Compare(a.Name, b.Name) })
		for _, e := range eps {
			fmt.Fprintf(&sb, "\nEndpoint: %s\n", line(e.Name))
			if len(e.Metadata) > 0 {
				fmt.Fprintf(&sb, "Metadata: %s\n", formatMetadata(e.Metadata))
			}
			fmt.Fprintf(&sb, "Request: %s\n", formatValue(e.Request, 0))
			fmt.Fprintf(&sb, "Response: %s\n", formatValue(e.Response, 0))
		}
	}
	return strings.TrimRight(sb.String(), "\n")
}

// maxDepth bounds how deep nested message fields are shown.
const maxDepth = 8

// formatValue renders a message's fields in braces, one per line, nested
// messages indented.
func formatValue(v *registry.Value, depth int) string {
	if v == nil || len(v.Values) == 0 {
		return "{}"
	}
	if depth >= maxDepth {
		return "{ … }"
	}
	var sb strings.Builder
	sb.WriteString("{\n")
	indent := strings.Repeat("  ", depth+1)
	for _, f := range v.Values {
		if f == nil {
			continue
		}
		fmt.Fprintf(&sb, "%s%s %s", indent, line(f.Name), line(f.Type))
		if len(f.Values) > 0 {
			sb.WriteString(" " + formatValue(f, depth+1))
		}
		sb.WriteString("\n")
	}
	sb.WriteString(strings.Repeat("  ", depth) + "}")
	return sb.String()
}

// formatMetadata renders metadata as sorted k=v pairs, or "-".
func formatMetadata(md map[string]string) string {
	if len(md) == 0 {
		return "-"
	}
	keys := slices.Sorted(maps.Keys(md))
	pairs := make([]string, len(keys))
	for i, k := range keys {
		pairs[i] = line(k) + "=" + line(md[k])
	}
	return strings.Join(pairs, ",")
}

// serviceError explains a registry lookup failure.
func serviceError(name string, err error) error {
	if errors.Is(err, registry.ErrNotFound) {
		return fmt.Errorf("service %s not found", Quote(name))
	}
	return fmt.Errorf("looking up service %s: %w", Quote(name), err)
}

// CallError explains a failed call of endpoint of service for a person:
// the framework's error detail (which names the call) without its id, or
// the error itself.
func CallError(service, endpoint string, err error) error {
	var fe *rpcerr.Error
	if errors.As(err, &fe) {
		detail := line(fe.Detail) // from the service
		if detail == "" {
			detail = orDash(line(fe.Status))
		}
		if !strings.Contains(detail, service) {
			detail = service + " " + endpoint + ": " + detail
		}
		return errors.New(detail)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("call to %s %s timed out", service, endpoint)
	}
	return fmt.Errorf("call to %s %s: %w", service, endpoint, err)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func isSpaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
