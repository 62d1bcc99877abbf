"""
What runs txgetty from the command line:

  - L{tap <txgetty.tools.tap>}: C{twistd -n txgetty}'s options and service
    (the plugin in C{twisted/plugins/txgetty_plugin.py} points here);
  - L{cli <txgetty.tools.cli>}: the C{txgetty} command (C{send}, C{call},
    C{bench}; also C{python -m txgetty});
  - L{loadgen <txgetty.tools.loadgen>}: the load generator of C{txgetty
    bench}.

Nothing else in txgetty imports these modules.
"""
