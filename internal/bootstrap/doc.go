// Package bootstrap makes the EC2 servers of an app environment that has
// none: the user's SSH key and a security group, an instance of a current
// Debian image launched with a client token (a retried launch never makes
// two), cloud-init user-data that installs jeagent, and the SSH host keys
// read from the console before the first connection. Every step is recorded
// in the environment's document of the global state (internal/globalstate),
// so that an interrupted bootstrap resumes where it stopped. See
// docs/ec2.md.
package bootstrap
