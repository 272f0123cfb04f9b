package ops

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	pb "github.com/microbot/microbot/proto/bot"
)

// AlertSource is the source of the notifications made from alerts.
const AlertSource = "alertmanager"

// AlertThreadKey is the thread key of the notifications of the alert group
// groupKey: "alertmanager-" and 96 bits of its SHA-256.
func AlertThreadKey(groupKey string) string {
	sum := sha256.Sum256([]byte(groupKey))
	return "alertmanager-" + hex.EncodeToString(sum[:12])
}

// notification is the Notification of one webhook call (see
// AlertmanagerHook).
func (p *alertPayload) notification() *pb.Notification {
	var firing, resolved []alert
	for _, a := range p.Alerts {
		if a.Status == statusFiring {
			firing = append(firing, a)
		} else {
			resolved = append(resolved, a)
		}
	}
	n := &pb.Notification{
		Title:     p.title(len(firing), len(resolved)),
		Text:      p.text(),
		Severity:  pb.Notification_OK,
		Fields:    p.fields(),
		Link:      p.link(firing),
		ThreadKey: AlertThreadKey(p.GroupKey),
		Source:    AlertSource,
	}
	if p.Status == statusFiring {
		n.Severity = gravest(firing)
		if t := earliestStart(firing); !t.IsZero() {
			n.Time = timestamppb.New(t)
		}
	} else if t := latestEnd(p.Alerts); !t.IsZero() {
		n.Time = timestamppb.New(t)
	}
	return n
}

// title is "FIRING: name", "FIRING (3): name", "RESOLVED: name".
func (p *alertPayload) title(firing, resolved int) string {
	status, count := "RESOLVED", resolved
	if p.Status == statusFiring {
		status, count = "FIRING", firing
	}
	if count > 1 {
		status += fmt.Sprintf(" (%d)", count)
	}
	return status + ": " + short(p.name(), maxAlertField)
}

// name names the group: its alertname, or its group labels.
func (p *alertPayload) name() string {
	for _, m := range []map[string]string{p.GroupLabels, p.CommonLabels} {
		if n := m["alertname"]; n != "" {
			return n
		}
	}
	if len(p.GroupLabels) > 0 {
		return labelList(p.GroupLabels, nil)
	}
	return "alerts of receiver " + p.Receiver
}

// text is one alert's summary and description, or a line per alert.
func (p *alertPayload) text() string {
	var lines []string
	if len(p.Alerts) == 1 {
		a := p.Alerts[0]
		for _, k := range []string{"summary", "description", "message"} {
			if v := strings.TrimSpace(a.Annotations[k]); v != "" && !slices.Contains(lines, v) {
				lines = append(lines, v)
			}
		}
	} else {
		for i, a := range p.Alerts {
			if i == maxAlertLines {
				lines = append(lines, fmt.Sprintf("… and %d more", len(p.Alerts)-i))
				break
			}
			what := firstOf(a.Annotations, "summary", "description", "message")
			if what == "" {
				what = labelList(a.Labels, p.CommonLabels)
			}
			if what == "" {
				what = labelList(a.Labels, nil)
			}
			lines = append(lines, a.Status+": "+short(what, maxAlertField))
		}
	}
	if p.TruncatedAlerts > 0 {
		lines = append(lines, fmt.Sprintf("(%d more alerts that Alertmanager did not send: max_alerts)", p.TruncatedAlerts))
	}
	return strings.Join(lines, "\n")
}

// fields are the labels the alerts share, alertname aside, then the
// annotations they share, the text's aside.
func (p *alertPayload) fields() []*pb.Notification_Field {
	var out []*pb.Notification_Field
	add := func(m map[string]string, skip ...string) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if len(out) == maxAlertFields {
				return
			}
			if !slices.Contains(skip, k) && m[k] != "" {
				out = append(out, &pb.Notification_Field{Name: short(k, maxAlertField), Value: short(m[k], maxAlertField)})
			}
		}
	}
	add(p.CommonLabels, "alertname")
	skip := []string{"summary", "description", "message"}
	if len(p.Alerts) > 1 {
		skip = nil // the text lists the alerts: their shared summary shows here
	}
	add(p.CommonAnnotations, skip...)
	return out
}

// link is the generator URL of the first firing alert (else of the first
// alert), or the external URL of Alertmanager; http and https only.
func (p *alertPayload) link(firing []alert) string {
	var cands []string
	for _, a := range append(firing, p.Alerts...) {
		cands = append(cands, a.GeneratorURL)
	}
	for _, c := range append(cands, p.ExternalURL) {
		if u, err := url.Parse(c); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
			return c
		}
	}
	return ""
}

// Severities by the values of the "severity" label.
var alertSeverities = map[string]pb.Notification_Severity{
	"critical": pb.Notification_CRITICAL, "page": pb.Notification_CRITICAL, "fatal": pb.Notification_CRITICAL, "emergency": pb.Notification_CRITICAL,
	"error": pb.Notification_ERROR, "high": pb.Notification_ERROR, "major": pb.Notification_ERROR,
	"warning": pb.Notification_WARNING, "warn": pb.Notification_WARNING, "medium": pb.Notification_WARNING, "minor": pb.Notification_WARNING,
	"info": pb.Notification_INFO, "low": pb.Notification_INFO, "notice": pb.Notification_INFO, "none": pb.Notification_INFO,
}

// gravest is the gravest severity of the alerts' "severity" labels;
// WARNING when none is known.
func gravest(alerts []alert) pb.Notification_Severity {
	sev := pb.Notification_UNSPECIFIED
	for _, a := range alerts {
		if s, ok := alertSeverities[strings.ToLower(strings.TrimSpace(a.Labels["severity"]))]; ok && s > sev {
			sev = s
		}
	}
	if sev == pb.Notification_UNSPECIFIED {
		return pb.Notification_WARNING
	}
	return sev
}

func earliestStart(alerts []alert) time.Time {
	var t time.Time
	for _, a := range alerts {
		if !a.StartsAt.IsZero() && (t.IsZero() || a.StartsAt.Before(t)) {
			t = a.StartsAt
		}
	}
	return t
}

func latestEnd(alerts []alert) time.Time {
	var t time.Time
	for _, a := range alerts {
		if a.EndsAt.After(t) && a.EndsAt.Year() > 1 {
			t = a.EndsAt
		}
	}
	return t
}

// labelList writes the labels of m that common does not have (with the
// same value), alertname aside, sorted:
// "instance=db1 job=node".
func labelList(m, common map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if v, shared := common[k]; (!shared || v != m[k]) && k != "alertname" {
			parts = append(parts, k+"="+m[k])
		}
	}
	return strings.Join(parts, " ")
}

// firstOf returns the first non-blank of m's values at keys.
func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := strings.TrimSpace(m[k]); v != "" {
			return v
		}
	}
	return ""
}

// short is s on one line, cut at n bytes on a character boundary.
func short(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
