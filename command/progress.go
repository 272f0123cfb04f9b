package command

import "context"

// ProgressFunc shows a line of progress of a running command to whoever
// asked ("step 2/5: migrating"), before its reply. The bot gives one to
// every command it runs for a chat message (see [NewProgressContext]); a
// command that reports progress (command services do, through the broker:
// package commandsvc/watch) calls it as often as it likes. It never
// blocks: the bot paces what it shows and folds what comes too fast, and
// ignores whatever comes once the command has returned. It is safe for
// concurrent use.
type ProgressFunc func(line string)

type progressKey struct{}

// NewProgressContext returns ctx carrying report, for the commands run
// with it.
func NewProgressContext(ctx context.Context, report ProgressFunc) context.Context {
	return context.WithValue(ctx, progressKey{}, report)
}

// ProgressFrom returns the ProgressFunc ctx carries, or nil: nobody shows
// this command's progress (a one-shot run, a test), so there is no need to
// follow it.
func ProgressFrom(ctx context.Context) ProgressFunc {
	f, _ := ctx.Value(progressKey{}).(ProgressFunc)
	return f
}
