package remote

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Dest is a parsed SSH destination.
type Dest struct {
	User string // "" when not given
	Host string // name, alias or address, without brackets
	Port int    // 0 when not given
}

// ParseDest parses "host", "user@host", "host:port", "user@[::1]:port" and
// "ssh://user@host:port". It refuses what could not be a destination.
func ParseDest(s string) (Dest, error) {
	orig := s
	bad := func(why string) (Dest, error) {
		return Dest{}, fmt.Errorf("invalid SSH destination %q: %s (write HOST, USER@HOST or USER@HOST:PORT)", orig, why)
	}
	if s == "" {
		return bad("it is empty")
	}
	if strings.ContainsAny(s, " \t\r\n'\"`$;&|<>\\") {
		return bad("it contains spaces or shell characters")
	}
	s = strings.TrimPrefix(s, "ssh://")
	s = strings.TrimSuffix(s, "/")
	var d Dest
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		d.User, s = s[:i], s[i+1:]
		if d.User == "" {
			return bad("the user before @ is empty")
		}
	}
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		h, p, err := net.SplitHostPort(s)
		if err != nil {
			if !strings.HasSuffix(s, "]") {
				return bad("unbalanced [ ]")
			}
			h, p = s[1:len(s)-1], ""
		}
		host, port = h, p
	case strings.Count(s, ":") == 1:
		host, port, _ = strings.Cut(s, ":")
	}
	if host == "" {
		return bad("the host is empty")
	}
	if strings.HasPrefix(host, "-") || strings.HasPrefix(d.User, "-") {
		return bad("it starts with '-'")
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return bad("the port is not a number from 1 to 65535")
		}
		d.Port = n
	}
	d.Host = host
	return d, nil
}

// String returns d as USER@HOST:PORT, leaving out what is not set.
func (d Dest) String() string {
	s := d.Host
	if strings.Contains(s, ":") {
		s = "[" + s + "]"
	}
	if d.User != "" {
		s = d.User + "@" + s
	}
	if d.Port != 0 {
		s += ":" + strconv.Itoa(d.Port)
	}
	return s
}
