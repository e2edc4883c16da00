# The HTTP application uses the network: lwIP is fetched and linked in.
APP_NET := lwip
