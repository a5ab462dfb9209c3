package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
)

// proxyCmd listens on a free loopback port (written to -port-file once it
// listens), forwards every connection to -to, and when a connection ends
// appends "up=BYTES down=BYTES" (client to server, server to client) to
// -stats. It runs until it is killed.
func proxyCmd(args []string) error {
	fs := flag.NewFlagSet("proxy", flag.ExitOnError)
	to := fs.String("to", "", "the server's `HOST:PORT`")
	portFile := fs.String("port-file", "", "where to write the port it listens on")
	stats := fs.String("stats", "", "the file it appends a line to per connection")
	fs.Parse(args)
	if *to == "" || *portFile == "" || *stats == "" {
		return errors.New("usage: jebench proxy -to HOST:PORT -port-file FILE -stats FILE")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	if err := os.WriteFile(*portFile+".tmp", []byte(port+"\n"), 0o644); err != nil {
		return err
	}
	if err := os.Rename(*portFile+".tmp", *portFile); err != nil {
		return err
	}
	var mu sync.Mutex
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			s, err := net.Dial("tcp", *to)
			if err != nil {
				fmt.Fprintf(os.Stderr, "jebench proxy: %v\n", err)
				return
			}
			defer s.Close()
			var up, down int64
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				up, _ = io.Copy(s, c)
				s.(*net.TCPConn).CloseWrite()
			}()
			down, _ = io.Copy(c, s)
			c.(*net.TCPConn).CloseWrite()
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			f, err := os.OpenFile(*stats, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err == nil {
				fmt.Fprintf(f, "up=%d down=%d\n", up, down)
				f.Close()
			}
		}()
	}
}
