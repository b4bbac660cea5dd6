-- AlterTable
ALTER TABLE "GatewayClient" ADD COLUMN "tokenPolicy" TEXT;
