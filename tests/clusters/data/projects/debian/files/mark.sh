#!/bin/sh
# Written by the Filrouge test playbook: proves the script ran on the host.
hostname > /root/checked-by-script
