package main

// The inputs (packages input/...): their flags, each with the environment
// variable MICRO_ + its upper-case name, and the table --inputs picks from,
// whose entries build an input's Config from those flags.

import (
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/microbot/microbot/bot/audit"
	"github.com/microbot/microbot/input"
	"github.com/microbot/microbot/input/shell"
	"github.com/microbot/microbot/input/slack"
	"github.com/microbot/microbot/input/xmpp"
	"github.com/microbot/microbot/internal/plugin"
)

// inputTable is the table of inputs --inputs picks from (the shape is
// package internal/plugin's): a new input is one more line here, and its
// flags in inputFlags. Each entry builds its input from the flags and the
// bot's parts.
var inputTable = plugin.NewTable("input", map[string]func(c *cli.Context, p *parts) (input.Input, error){
	shell.Name:       newShell,
	slack.Name:       newSlack,
	xmpp.Name:        newXMPP,
	xmpp.HipChatName: newHipChat, // the xmpp input, its account from the --hipchat_* flags
})

// Flag names of the inputs.
const (
	flagShellUser     = "shell_user"
	flagShellUserName = "shell_user_name"
	flagShellHistory  = "shell_history"

	flagSlackAppToken = "slack_app_token"
	flagSlackBotToken = "slack_bot_token"
	flagSlackToken    = "slack_token" // the name micro's bot used: an alias of flagSlackBotToken
	flagSlackAPIURL   = "slack_api_url"
	flagSlackDebug    = "slack_debug"

	flagXMPPJID                = "xmpp_jid"
	flagXMPPPassword           = "xmpp_password"
	flagXMPPRooms              = "xmpp_rooms"
	flagXMPPNick               = "xmpp_nick"
	flagXMPPServer             = "xmpp_server"
	flagXMPPTLS                = "xmpp_tls"
	flagXMPPCAFile             = "xmpp_ca_file"
	flagXMPPInsecureSkipVerify = "xmpp_insecure_skip_verify"
	flagXMPPAllowPlain         = "xmpp_allow_plain"
	flagXMPPPingInterval       = "xmpp_ping_interval"

	flagHipChatUsername = "hipchat_username"
	flagHipChatPassword = "hipchat_password"
	flagHipChatServer   = "hipchat_server"
)

// envOf returns a flag's environment variable.
func envOf(flag string) string { return "MICRO_" + strings.ToUpper(flag) }

// described names a flag for error messages: "--xmpp_jid (or MICRO_XMPP_JID)".
func described(flag string) string { return "--" + flag + " (or " + envOf(flag) + ")" }

// inputFlags returns the flags of every input, new each call.
func inputFlags() []cli.Flag {
	str := func(name, usage string) *cli.StringFlag {
		return &cli.StringFlag{Name: name, EnvVars: []string{envOf(name)}, Usage: usage}
	}
	boolean := func(name, usage string) *cli.BoolFlag {
		return &cli.BoolFlag{Name: name, EnvVars: []string{envOf(name)}, Usage: usage}
	}
	shellUser := str(flagShellUser, "user id of the console user (policies decide by it; set it to try the bot as someone else)")
	shellUser.Value = shell.DefaultConfig().UserID
	history := str(flagShellHistory, `file keeping the console's line history between runs ("" keeps it in memory only)`)
	history.Value = shell.DefaultConfig().History
	botToken := str(flagSlackBotToken, "Slack bot token (xoxb-…) for the Web API")
	botToken.Aliases, botToken.EnvVars = []string{flagSlackToken}, []string{envOf(flagSlackBotToken), envOf(flagSlackToken)}
	xmppDefaults := xmpp.DefaultConfig()
	tls := str(flagXMPPTLS, "starttls (required), direct (TLS from the first byte, port 5223), or none (development servers only)")
	tls.Value = xmppDefaults.TLS
	return []cli.Flag{
		shellUser,
		str(flagShellUserName, "display name of the console user (default: the user id)"),
		history,

		str(flagSlackAppToken, "Slack app-level token (xapp-…, scope connections:write) that opens the Socket Mode connection"),
		botToken,
		str(flagSlackAPIURL, "Slack Web API base URL (a Slack-compatible proxy or a test server; default https://slack.com/api/)"),
		boolean(flagSlackDebug, "log the Socket Mode traffic at debug level (credentials redacted, message text included)"),

		str(flagXMPPJID, "XMPP account of the bot, bot@example.org[/resource]"),
		str(flagXMPPPassword, "password of --xmpp_jid (prefer the environment variable: flags show in ps)"),
		&cli.StringSliceFlag{Name: flagXMPPRooms, EnvVars: []string{envOf(flagXMPPRooms)},
			Usage: "comma-separated rooms (XEP-0045) to join, e.g. ops@conference.example.org"},
		str(flagXMPPNick, "nick in rooms, and the name that addresses the bot there (default: the JID's localpart)"),
		str(flagXMPPServer, "server address host:port, instead of the SRV records of the JID's domain"),
		tls,
		str(flagXMPPCAFile, "PEM file of the CA certificates to trust for the server (instead of the system's)"),
		boolean(flagXMPPInsecureSkipVerify, "do not verify the server's certificate (development servers only)"),
		boolean(flagXMPPAllowPlain, "allow sending the password with SASL PLAIN without TLS (development servers only)"),
		&cli.DurationFlag{Name: flagXMPPPingInterval, EnvVars: []string{envOf(flagXMPPPingInterval)}, Value: xmppDefaults.PingInterval,
			Usage: "ping the server after this much silence; a stream silent for this plus 20s is dropped and reopened"},

		str(flagHipChatUsername, "XMPP account of the bot for --inputs=hipchat: a JID (bot@example.org), or a user name on --hipchat_server"),
		str(flagHipChatPassword, "password of --hipchat_username"),
		str(flagHipChatServer, "XMPP server for --inputs=hipchat, host[:port] (port 5222 by default); also the domain of a --hipchat_username without one"),
	}
}

// newShell is the console of --shell_user. It completes with the command
// table (the commands the console user may run, service names and endpoints
// from the registry) and keeps out of its history file the lines the audit
// log would redact.
func newShell(c *cli.Context, p *parts) (input.Input, error) {
	in, err := shell.New(shell.Config{
		UserID:   c.String(flagShellUser),
		UserName: c.String(flagShellUserName),
		History:  c.String(flagShellHistory),
		Names:    input.Names{"UserID": "--" + flagShellUser},
	}, shell.WithCompleter(p.table), shell.WithSecretLines(audit.HasSecret))
	if err != nil {
		return nil, err
	}
	return in, nil
}

// newSlack is Slack with the --slack_* tokens; with --ha, its deliveries
// are claimed among the instances.
func newSlack(c *cli.Context, p *parts) (input.Input, error) {
	in, err := slack.New(slack.Config{
		AppToken: c.String(flagSlackAppToken),
		BotToken: c.String(flagSlackBotToken),
		APIURL:   c.String(flagSlackAPIURL),
		Debug:    c.Bool(flagSlackDebug),
		Names: input.Names{
			"AppToken": described(flagSlackAppToken),
			"BotToken": "--" + flagSlackBotToken + " (or --" + flagSlackToken + ", " + envOf(flagSlackBotToken) + ", " + envOf(flagSlackToken) + ")",
			"APIURL":   described(flagSlackAPIURL),
		},
	}, p.ha.slackOptions()...)
	if err != nil {
		return nil, err
	}
	return in, nil
}

// xmppConfig is the XMPP configuration the --xmpp_* flags give.
func xmppConfig(c *cli.Context) xmpp.Config {
	names := input.Names{}
	for field, flag := range map[string]string{
		"JID": flagXMPPJID, "Password": flagXMPPPassword, "Rooms": flagXMPPRooms, "Nick": flagXMPPNick,
		"Server": flagXMPPServer, "TLS": flagXMPPTLS, "CAFile": flagXMPPCAFile, "InsecureSkipVerify": flagXMPPInsecureSkipVerify,
	} {
		names[field] = described(flag)
	}
	return xmpp.Config{
		JID:                c.String(flagXMPPJID),
		Password:           c.String(flagXMPPPassword),
		Rooms:              c.StringSlice(flagXMPPRooms),
		Nick:               c.String(flagXMPPNick),
		Server:             c.String(flagXMPPServer),
		TLS:                c.String(flagXMPPTLS),
		CAFile:             c.String(flagXMPPCAFile),
		InsecureSkipVerify: c.Bool(flagXMPPInsecureSkipVerify),
		AllowPlain:         c.Bool(flagXMPPAllowPlain),
		PingInterval:       c.Duration(flagXMPPPingInterval),
		Names:              names,
	}
}

// newXMPP is XMPP on the --xmpp_jid account.
func newXMPP(c *cli.Context, _ *parts) (input.Input, error) {
	in, err := xmpp.New(xmppConfig(c))
	if err != nil {
		return nil, err
	}
	return in, nil
}

// newHipChat is XMPP on the --hipchat_username account; the other --xmpp_*
// flags (rooms, nick, TLS) apply too.
func newHipChat(c *cli.Context, _ *parts) (input.Input, error) {
	cfg := xmppConfig(c)
	cfg.JID, cfg.Server = xmpp.HipChatAccount(c.String(flagHipChatUsername), c.String(flagHipChatServer))
	cfg.Password = c.String(flagHipChatPassword)
	cfg.Names["JID"] = described(flagHipChatUsername)
	cfg.Names["Password"] = described(flagHipChatPassword)
	cfg.Names["Server"] = described(flagHipChatServer)
	in, err := xmpp.NewHipChat(cfg)
	if err != nil {
		return nil, err
	}
	return in, nil
}
