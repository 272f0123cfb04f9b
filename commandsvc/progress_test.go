package commandsvc_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework/metadata"
)

// TestProgressRefusesForeignTopics: Progress publishes to progress topics
// only, so a caller cannot make a command service post on another topic.
func TestProgressRefusesForeignTopics(t *testing.T) {
	ctx := metadata.NewContext(context.Background(), metadata.Metadata{commandsvc.MetaProgress: "alerts"})
	if err := commandsvc.Progress(ctx, "x"); err == nil || !strings.Contains(err.Error(), `"alerts" does not start with go.micro.bot.progress.`) {
		t.Errorf("Progress to a foreign topic = %v", err)
	}
	ctx = metadata.NewContext(context.Background(), metadata.Metadata{commandsvc.MetaProgress: commandsvc.ProgressTopicPrefix + "x"})
	if err := commandsvc.Progress(ctx, "x"); !errors.Is(err, commandsvc.ErrNoPublisher) {
		t.Errorf("Progress without a publisher = %v, want ErrNoPublisher", err)
	}
	if err := commandsvc.Progress(context.Background(), "x"); err != nil {
		t.Errorf("Progress with nobody following = %v, want nil", err)
	}
}
