package bot_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/microbot/microbot/bot"
	"github.com/microbot/microbot/input"
)

func TestInputHook(t *testing.T) {
	var mu sync.Mutex
	var got []string
	hook := func(name string, up bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case up && err == nil:
			got = append(got, name+" up")
		case !up && errors.Is(err, io.EOF):
			got = append(got, name+" ended")
		case !up && err != nil:
			got = append(got, name+" down: "+err.Error())
		default:
			got = append(got, fmt.Sprintf("%s bad call up=%v err=%v", name, up, err))
		}
	}
	f := &flaky{fails: 2, err: errors.New("connection refused"), sent: make(chan string, 10),
		events: []*input.Event{{Text: "whoami", Addressed: true, Input: "flaky", UserID: "U9"}}}
	b := bot.New(testTable(t), bot.WithInputs(f), bot.WithLogger(quietLogger()),
		bot.WithBackoff(time.Millisecond, 5*time.Millisecond), bot.WithInputHook(hook))
	if err := b.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"flaky down: connection refused", "flaky down: connection refused", "flaky up", "flaky ended"}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("hook calls:\n got %q\nwant %q", got, want)
	}
}
