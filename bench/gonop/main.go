// Command gonop does nothing: `make bench` runs it as the floor of any Go
// program's cost (runtime start and exit), beside /bin/true.
package main

func main() {}
