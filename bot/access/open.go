package access

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/microbot/microbot/bot/audit"
	"github.com/microbot/microbot/input"
)

// Config is where a Guard's policy, admins and audit log come from.
type Config struct {
	// Policy is the YAML policy file (see docs/access.md); empty: the
	// defaults (everyone may run every command but those of
	// AdminCommands, which are for admins).
	Policy string
	// Admins are admins as input:user-id (slack:U0123ABCD), added to the
	// policy's.
	Admins []string
	// AuditLog is the file the audit log is appended to, "-" for AuditStderr;
	// empty: audit records go to the logger at level info.
	AuditLog string
	// AuditStderr is where AuditLog "-" writes (default os.Stderr).
	AuditStderr io.Writer
	// ConfirmTimeout is how long a confirmation code stays valid; zero: the
	// policy's confirm.timeout, or 2 minutes.
	ConfirmTimeout time.Duration
	// Names names the fields in error messages.
	Names input.Names
}

// Open builds a Guard from cfg: the policy file or the defaults, the
// admins, the audit log and the confirmation timeout, logging to logger
// (nil: slog.Default()). A policy that does not load is an error naming the
// file and line. opts are applied after those cfg gives (e.g.
// WithSharedStore). Close the Guard when done, to close the audit file.
func Open(cfg Config, logger *slog.Logger, opts ...Option) (*Guard, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if cfg.ConfirmTimeout < 0 {
		return nil, fmt.Errorf("%s must be positive", cfg.Names.Of("ConfirmTimeout"))
	}
	var admins []string
	for _, a := range cfg.Admins {
		if a = strings.TrimSpace(a); a != "" {
			admins = append(admins, a)
		}
	}
	var p *Policy
	var err error
	if cfg.Policy != "" {
		p, err = Load(cfg.Policy, admins...)
	} else {
		p, err = Default(admins...)
	}
	if err != nil {
		return nil, err
	}
	stderr := cfg.AuditStderr
	if stderr == nil {
		stderr = os.Stderr
	}
	a, err := audit.Open(cfg.AuditLog, stderr, logger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Names.Of("AuditLog"), err)
	}
	g := New(p, append([]Option{WithLogger(logger), WithAudit(a), WithConfirmTimeout(cfg.ConfirmTimeout)}, opts...)...)
	source := p.Source()
	if source == "" {
		source = "defaults (no policy file)"
	}
	logger.Info("access policy", "policy", source, "rules", len(p.rules)-len(defaultRules()),
		"admins", len(p.admins), "confirm_timeout", g.confirmTimeout(p), "audit_log", auditName(a.Path(), cfg.AuditLog))
	if len(p.admins) == 0 {
		logger.Info("no admins: nobody may register or deregister services, watch, unwatch or publish (name admins with --admins or in the policy file)")
	}
	return g, nil
}

// auditName says where the audit log goes, for the log.
func auditName(path, configured string) string {
	switch {
	case path != "":
		return path
	case configured == "-":
		return "stderr"
	}
	return "the log"
}
