package testenv

import (
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"
)

func TestParseProcAddr(t *testing.T) {
	tests := []struct {
		in, want string // want "" for an error
	}{
		{"0100007F:1F90", "127.0.0.1:8080"},
		{"FB0000E0:14E9", "224.0.0.251:5353"},
		{"00000000:0000", "0.0.0.0:0"},
		{"00000000000000000000000001000000:0035", "[::1]:53"},
		{"000080FE00000000FF00FC00010000FE:14E9", "[fe80::fc:ff:fe00:1]:5353"},
		{"0000000000000000FFFF00000100007F:0050", "127.0.0.1:80"}, // IPv4-mapped
		{"0100007F", ""},
		{"0100007F:XYZ", ""},
		{"01007F:0050", ""},
	}
	for _, tt := range tests {
		got, err := parseProcAddr(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("parseProcAddr(%q) = %v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

// TestUDPSockets finds the UDP sockets of this process, and only while
// they are open.
func TestUDPSockets(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	before, err := UDPSockets(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var open []netip.AddrPort
	for _, network := range []string{"udp4", "udp6"} {
		addr := "127.0.0.1:0"
		if network == "udp6" {
			addr = "[::1]:0"
		}
		c, err := net.ListenPacket(network, addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		open = append(open, c.LocalAddr().(*net.UDPAddr).AddrPort())
	}
	got, err := UDPSockets(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, ap := range open {
		if !slices.Contains(got, ap) || slices.Contains(before, ap) {
			t.Errorf("UDPSockets: %v before, %v with %v open", before, got, open)
		}
	}
	// A UDP socket of another process is not this one's.
	if _, err := UDPSockets(1 << 30); err == nil {
		t.Error("UDPSockets of no process: no error")
	}
}
