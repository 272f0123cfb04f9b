package commandsvc_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/microbot/microbot/commandsvc"
	"github.com/microbot/microbot/framework/broker"
	"github.com/microbot/microbot/framework/broker/memory"
	"github.com/microbot/microbot/framework/client"
	"github.com/microbot/microbot/framework/metadata"
	pb "github.com/microbot/microbot/proto/bot"
)

// TestProgressRefusesForeignTopics: Progress publishes to progress topics
// only, so a caller cannot make a command service post on another topic;
// without a topic and a run id it does nothing.
func TestProgressRefusesForeignTopics(t *testing.T) {
	md := func(topic, run string) context.Context {
		return metadata.NewContext(context.Background(), metadata.Metadata{commandsvc.MetaProgress: topic, commandsvc.MetaProgressRun: run})
	}
	if err := commandsvc.Progress(md("alerts", "r1"), "x"); err == nil || !strings.Contains(err.Error(), `"alerts" does not start with go.micro.bot.progress.`) {
		t.Errorf("Progress to a foreign topic = %v", err)
	}
	if err := commandsvc.Progress(md(commandsvc.ProgressTopicPrefix+"x", "r1"), "x"); !errors.Is(err, commandsvc.ErrNoPublisher) {
		t.Errorf("Progress without a publisher = %v, want ErrNoPublisher", err)
	}
	for _, ctx := range []context.Context{context.Background(), md(commandsvc.ProgressTopicPrefix+"x", ""), md("", "r1")} {
		if err := commandsvc.Progress(ctx, "x"); err != nil {
			t.Errorf("Progress with nobody following = %v, want nil", err)
		}
	}
}

// TestProgressMessage: what Progress publishes — a Notification with the
// line as its text, typed, with the run id in its header, to the topic.
func TestProgressMessage(t *testing.T) {
	b := memory.New()
	if err := b.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer b.Disconnect(context.Background())
	c, err := client.New(client.WithBroker(b))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	topic := commandsvc.ProgressTopicPrefix + "t1"
	got := make(chan *broker.Event, 1)
	if _, err := b.Subscribe(context.Background(), topic, func(_ context.Context, e *broker.Event) error {
		got <- e
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// The context of Exec: the request's metadata, and the publisher the
	// handler gives it.
	var ctx context.Context
	h := commandsvc.Handler("job", "", func(c context.Context, _ []string) (string, error) { ctx = c; return "", nil }, commandsvc.WithPublisher(c))
	in := metadata.NewContext(context.Background(), metadata.Metadata{commandsvc.MetaProgress: topic, commandsvc.MetaProgressRun: "r1"})
	if err := h.Exec(in, &pb.ExecRequest{Args: []string{"job"}}, &pb.ExecResponse{}); err != nil {
		t.Fatal(err)
	}
	if err := commandsvc.Progress(ctx, "step 1"); err != nil {
		t.Fatal(err)
	}
	e := <-got
	d := pb.Decode(e.Header, e.Body)
	if d.Kind != pb.KindNotification || d.Notification.GetText() != "step 1" || e.Header[commandsvc.MetaProgressRun] != "r1" || e.Topic != topic {
		t.Errorf("published %+v on %s (%+v), want the line as a Notification with run r1", e.Header, e.Topic, d)
	}
}
