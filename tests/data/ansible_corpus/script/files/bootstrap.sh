#!/bin/sh
touch /etc/bootstrapped
