mod credentials;
