package commandsvc_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/microbot/microbot/commandsvc"
	pb "github.com/microbot/microbot/proto/bot"
)

func TestHandler(t *testing.T) {
	h := commandsvc.Handler("deploy [service]", "Deploys a service", func(ctx context.Context, args []string) (string, error) {
		if len(args) < 2 {
			return "", errors.New("which service?")
		}
		return "deployed " + strings.Join(args[1:], " "), nil
	})
	ctx := context.Background()
	var help pb.HelpResponse
	if err := h.Help(ctx, &pb.HelpRequest{}, &help); err != nil || help.Usage != "deploy [service]" || help.Description != "Deploys a service" {
		t.Errorf("Help = %+v, %v", &help, err)
	}
	tests := []struct {
		args          []string
		result, error string
	}{
		{[]string{"deploy", "web"}, "deployed web", ""},
		{[]string{"deploy"}, "", "which service?"}, // the command's error travels in the answer
	}
	for _, tt := range tests {
		var rsp pb.ExecResponse
		if err := h.Exec(ctx, &pb.ExecRequest{Args: tt.args}, &rsp); err != nil || string(rsp.Result) != tt.result || rsp.Error != tt.error {
			t.Errorf("Exec(%q) = %q, %q, %v; want %q, %q", tt.args, rsp.Result, rsp.Error, err, tt.result, tt.error)
		}
	}
}

func TestRunRefusesAName(t *testing.T) {
	err := commandsvc.Run(context.Background(), "deploy", "deploy", "", nil)
	if err == nil || !strings.Contains(err.Error(), `"deploy" is not a service name (want go.micro.bot.<command>)`) {
		t.Errorf("Run = %v", err)
	}
}
