package testenv

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// UDPSockets returns the local addresses of the UDP sockets (IPv4 and IPv6)
// process pid holds open, read from /proc (Linux): for tests that check a
// real program speaks only TCP on loopback, multicast DNS (a UDP socket on
// port 5353 held for the program's life) included. If the process is gone,
// or there is no /proc, the error wraps fs.ErrNotExist.
func UDPSockets(pid int) ([]netip.AddrPort, error) {
	dir := filepath.Join("/proc", strconv.Itoa(pid))
	fds, err := os.ReadDir(filepath.Join(dir, "fd"))
	if err != nil {
		return nil, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, "fd", fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); err == nil && ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var socks []netip.AddrPort
	for _, table := range []string{"udp", "udp6"} {
		data, err := os.ReadFile(filepath.Join(dir, "net", table))
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Scan() // the header
		for sc.Scan() {
			// sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
			f := strings.Fields(sc.Text())
			if len(f) < 10 || !inodes[f[9]] {
				continue
			}
			ap, err := parseProcAddr(f[1])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "net", table), err)
			}
			socks = append(socks, ap)
		}
	}
	return socks, nil
}

// parseProcAddr parses an address of /proc/net/udp{,6}: the IP in hex, as
// 32-bit words printed as numbers of the host's byte order, a colon, the
// port in hex.
func parseProcAddr(s string) (netip.AddrPort, error) {
	h, p, ok := strings.Cut(s, ":")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad address %q: %w", s, err)
	}
	for w := 0; w < len(b); w += 4 {
		binary.NativeEndian.PutUint32(b[w:], binary.BigEndian.Uint32(b[w:]))
	}
	addr, _ := netip.AddrFromSlice(b)
	return netip.AddrPortFrom(addr.Unmap(), uint16(port)), nil
}
