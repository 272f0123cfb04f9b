package access

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/bot/audit"
)

// Flag names of the access guard.
const (
	FlagPolicy         = "policy"
	FlagAdmins         = "admins"
	FlagAuditLog       = "audit_log"
	FlagConfirmTimeout = "confirm_timeout"
)

// Flags returns the guard's command-line flags, new each call:
//
//	--policy           YAML policy file, reloaded on SIGHUP          $MICRO_POLICY
//	--admins           admins, input:id, comma-separated             $MICRO_ADMINS
//	--audit_log        audit file (appended, 0600), or - for stderr  $MICRO_AUDIT_LOG
//	--confirm_timeout  how long a confirmation code is valid (2m)    $MICRO_CONFIRM_TIMEOUT
func Flags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: FlagPolicy, EnvVars: []string{"MICRO_POLICY"},
			Usage: "access policy file (YAML, see docs/access.md); reloaded on SIGHUP. Default: everyone may run every command but register/deregister service, which are for admins"},
		&cli.StringSliceFlag{Name: FlagAdmins, EnvVars: []string{"MICRO_ADMINS"},
			Usage: "admins, as input:user-id (slack:U0123ABCD, xmpp:alice@example.org, shell:alice), comma-separated; added to the policy file's"},
		&cli.StringFlag{Name: FlagAuditLog, EnvVars: []string{"MICRO_AUDIT_LOG"},
			Usage: "file to append the audit log to, one JSON line per command (created with mode 0600), or - for standard error. Default: audit records go to the log at level info"},
		&cli.DurationFlag{Name: FlagConfirmTimeout, EnvVars: []string{"MICRO_CONFIRM_TIMEOUT"},
			Usage: "how long a confirmation code stays valid (default: the policy's confirm.timeout, or 2m)"},
	}
}

// FromCLI builds a Guard from the parsed command line (whose flags include
// [Flags]): the policy file or the defaults, the admins, the audit log and
// the confirmation timeout. A policy that does not load is an error naming
// the file and line. Close the Guard when done, to close the audit file.
func FromCLI(c *cli.Context, logger *slog.Logger) (*Guard, error) {
	if logger == nil {
		logger = slog.Default()
	}
	var admins []string
	for _, a := range c.StringSlice(FlagAdmins) {
		if a = strings.TrimSpace(a); a != "" {
			admins = append(admins, a)
		}
	}
	var p *Policy
	var err error
	if path := c.String(FlagPolicy); path != "" {
		p, err = Load(path, admins...)
	} else {
		p, err = Default(admins...)
	}
	if err != nil {
		return nil, err
	}
	timeout := c.Duration(FlagConfirmTimeout)
	if c.IsSet(FlagConfirmTimeout) && timeout <= 0 {
		return nil, fmt.Errorf("--%s must be positive", FlagConfirmTimeout)
	}
	var stderr io.Writer = os.Stderr
	if c.App != nil && c.App.ErrWriter != nil {
		stderr = c.App.ErrWriter
	}
	a, err := audit.Open(c.String(FlagAuditLog), stderr, logger)
	if err != nil {
		return nil, fmt.Errorf("--%s: %w", FlagAuditLog, err)
	}
	g := New(p, WithLogger(logger), WithAudit(a), WithConfirmTimeout(timeout))
	source := p.Source()
	if source == "" {
		source = "defaults (no --policy)"
	}
	logger.Info("access policy", "policy", source, "rules", len(p.rules)-len(defaultRules()),
		"admins", len(p.admins), "confirm_timeout", g.confirmTimeout(p), "audit_log", orDefault(a.Path(), c.String(FlagAuditLog)))
	if len(p.admins) == 0 {
		logger.Info("no admins: nobody may register or deregister services (name admins with --admins or in the policy file)")
	}
	return g, nil
}

func orDefault(path, flag string) string {
	switch {
	case path != "":
		return path
	case flag == "-":
		return "stderr"
	}
	return "the log"
}
